"""What function_app.py and the local host call: the HTTP, queue and timer handlers."""
