"""Identity and account-hygiene auditor."""

__version__ = "0.1.0"
