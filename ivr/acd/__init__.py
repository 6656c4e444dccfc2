"""The agent queue: agents, queues, and the authority that matches callers to agents."""
