// The CBAM-ResNet engine lands here (issue: engine).
