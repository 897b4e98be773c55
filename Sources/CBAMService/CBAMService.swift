// The inference service lands here (issue: service).
