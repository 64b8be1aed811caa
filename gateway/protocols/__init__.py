"""Wire protocols as plain functions over bytes (terminal, NMEA, gpsd) and thin transports."""
