"""What invokes the functions: typed wrappers over SCF events and the public callback endpoint."""
