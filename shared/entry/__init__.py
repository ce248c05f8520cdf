"""The entry layer: what function_app.py and the local host call, one module per trigger.

bootstrap wires settings -> ledger -> clients (the composition root); responses holds the
answers and the request limits; auth the Basic auth and inbound token. Handlers: halo_webhook
(/api/halopsa, /api/webhook/{token}), signl4_webhook (/api/signl4), queues (outboxes, poison),
timers (heartbeat, held pages), health (/api/health).
"""
