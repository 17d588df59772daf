"""VM3-AC (Kim et al., AAMAS 2023): the latent z at execution (Table 1) and the agents' early
positions (Fig. 6)."""
