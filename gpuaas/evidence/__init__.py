"""The evidence packet: readback, signature, promotion check (README.md here)."""
