"""Thin I/O around the sans-I/O protocols: MQTT (paho), the gpsd socket, serial ports."""
