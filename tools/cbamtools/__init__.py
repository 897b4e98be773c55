"""What the project's Python tools share: the reference PyTorch CBAM-ResNet, the `cbam-resnet/1` config builder,
the shape inference behind export_checkpoint.py, safetensors I/O and the dataset constants.

The scripts in tools/ import these modules (running `python3 tools/<script>.py` puts tools/ on the path); no script
imports another. Only `cbamtools.model`, `cbamtools.random_weights`, `cbamtools.parity_fixture` and
`cbamtools.torchserve_handler` need torch; the rest need numpy and the `safetensors` package at most, which is what
CI installs (tools/requirements-test.txt).

    datasets        CIFAR-10 classes, mean and std; ImageNet mean and std; the fixed CIFAR-10 validation split
    config          the `cbam-resnet/1` config.json dict, built in one place; a model directory's labels
    checkpoint      a config inferred from a checkpoint's tensor names and shapes, and the shapes a config implies
    safetensors_io  read and write .safetensors files as numpy arrays
    model           (torch) the reference CBAM-ResNet, loading a model directory into it, the multiply-add counter
    random_weights  (torch) well-scaled random weights and measured BN statistics for untrained models
    parity_fixture  (torch) the files of one engine parity fixture, as the fixture generators write them
    torchserve_handler  (torch) a TorchServe handler for a model directory, archived by tools/bench_peers.py
    server          a `cbam-serve serve` child process on a free port, for tests and load tools; an HTTP helper
"""
