"""Simulated 城管通 terminals: wire-v1 over MQTT, with real photos and voice notes.

An independent implementation of the terminal side of the wire contract (it shares
no code with `gateway.protocols`), so the golden vectors cross-check the two.

    wire, downlink    uplink messages built, downlinks parsed (pure)
    media, photo,     media files cut into chunks; JPEGs with EXIF; AMR-NB voice notes
      voice
    reports           what an inspector reports: class, description, fix, media
    link              one terminal's MQTT 5 connection (aiomqtt, on the event loop)
    terminal          one terminal's upload-and-ack protocol
    fleet             N terminals x K reports in one event loop; `run_fleet`
    outcomes          per-report outcomes, live counters, the summary
    cli               `firmware-sim run ...`
"""
