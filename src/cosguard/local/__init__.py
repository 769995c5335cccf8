"""The local cloud: COS, CI virus detection and an SCF runtime, served over HTTP on loopback.

Not shipped in the SCF layer. Needs the `local` extra (moto, werkzeug, py7zr). The emulator logs as
`cosguard_local.*`, outside the `cosguard` tree whose JSON handler the functions configure, so its
messages reach the root logger (and pytest) as usual.
"""
