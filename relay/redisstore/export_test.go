package redisstore

// SetSearchBudget makes each Prune of s look at n members of the search
// index at most, so that a test sees the walk resume from Prune to Prune.
func SetSearchBudget(s *Store, n int) { s.searchBudget = n }
