"""What people read: charts and the OPSG report."""
