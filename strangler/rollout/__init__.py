"""Progressive rollout: a route stepped to its new backend while live traffic is analysed."""
