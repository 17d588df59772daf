"""What learners use besides networks: storage, returns, seed-batched optimisers, seeding, settings
checks, the latent z at execution.

May import: one another only.
"""
