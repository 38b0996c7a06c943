"""Results database, statistics, leaderboard tables, plots and the HTML report."""
