"""What the relay works with, independent of where it is stored: events and their
steps, the records of delivery, the problems operators see and the daily quota's clock.

Planning, delivery, alerts and the admin API import these; ``app.store`` stores them.
"""
