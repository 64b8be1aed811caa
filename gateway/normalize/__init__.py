"""The standard component/event message: code profiles, acceptance window, case numbers."""
