"""Cinder v3: volumes, extend, attachments as Cinder sees them, quotas."""
