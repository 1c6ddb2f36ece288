"""sipsim: SIP trunk endpoints over mutual TLS, the way CUCM clusters speak them."""
__version__ = "0.1.0"
