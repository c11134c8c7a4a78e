"""Sources: git mirrors, checkouts and facts about local working trees."""
