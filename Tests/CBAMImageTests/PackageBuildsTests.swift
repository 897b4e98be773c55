import Testing
// Placeholder so that the target builds; replaced by the real tests of its issue.
