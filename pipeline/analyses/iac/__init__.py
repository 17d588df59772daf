"""IAC (Ma et al., AAMAS 2021): the matrix-game tables (Tables 1-4), Simple World's landscapes
(Figs. 2-3), the covariance snapshots (Fig. 5) and the steps saved (Fig. 7)."""
