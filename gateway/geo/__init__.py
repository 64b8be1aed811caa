"""Where a report is and who answers for it: fix checks, GCJ-02, the unit grid, road
segments and their responsible units, coverage. Pure: positions and config data in,
answers out."""
