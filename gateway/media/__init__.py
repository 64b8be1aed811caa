"""Media stages: chunk assembly, photo compression, voice transcoding. Pure: files in, files out."""
