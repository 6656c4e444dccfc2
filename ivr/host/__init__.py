"""The engine host: flows, store, prompts, actions, speech and sessions for every transport."""
