"""Inquiries (استعلام): tracking codes, the municipality's signed answers, their published
status, and the printable letter that carries them."""
