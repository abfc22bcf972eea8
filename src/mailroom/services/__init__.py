"""Business logic, one module per named API; knows nothing of HTTP, SMTP or XML."""
