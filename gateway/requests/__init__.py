"""Citizen requests (درخواست‌های شهروندی) and the 137 contact centre: the services catalogue,
registration, routing, lifecycle, appointments and their figures."""
