"""What the relay works with, independent of where it is stored: events and their
steps, the records of delivery, the problems operators see, the daily quota's clock and
how an operator's time is read.

Planning, delivery, alerts and the admin API import these; ``app.store`` stores them.
"""
