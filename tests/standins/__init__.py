"""Small stand-ins of the vendor APIs, built from their documented payloads."""
