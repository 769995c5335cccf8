"""The local cloud: COS, CI virus detection and an SCF runtime, served over HTTP on loopback.

Not shipped in the SCF layer. Needs the `local` extra (moto, werkzeug, py7zr).
"""
