"""What people read in a terminal: aligned tables and a progress bar, shared by the `cosguard`
command (cli/) and the demo (local/demo.py); both sit on top of the layers, and neither imports
the other."""
