"""What people read: aligned tables and a progress bar in a terminal, shared by the `cosguard`
command (cli/) and the demo (local/demo.py), and the operator report's HTML page with its inline SVG
charts (report_html.py, svg.py; figures from bulk/figures.py). All sit on top of the layers; the
demo does not import the command."""
