"""The running gateway: intake, pipeline, deliveries, task dispatch, operations endpoint."""
