"""The harness of the demo, the tests and the benchmarks: a Mosquitto of their own, the
gateway as a child process, the demo itself. Nothing in the running gateway imports it."""
