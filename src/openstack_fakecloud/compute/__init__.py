"""Nova v2.1: flavors, servers and their actions, volume attachments, quotas and limits."""
