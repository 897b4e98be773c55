/// A ResNet block with optional CBAM, as torchvision's `BasicBlock` / `Bottleneck` (stride on the 3x3 conv):
///   basic:      F = bn2(conv3x3(relu(bn1(conv3x3(x)))))
///   bottleneck: F = bn3(conv1x1(relu(bn2(conv3x3(relu(bn1(conv1x1(x))))))))
///   output = relu(attention(F) + shortcut(x)),  shortcut = x, bn(conv1x1/s(x)) or bn(conv1x1(avgpool2x2(x))).
struct ResidualBlock {
    /// "layerX.Y", as the PyTorch module.
    let name: String
    /// conv1, conv2 (and conv3 for a bottleneck), BN folded in; ReLU fused on all but the last.
    let convolutions: [Conv2D]
    let downsample: Conv2D?
    /// The shortcut average-pools (2x2/2) before its stride-1 `downsample` (timm's `avg_down`).
    var shortcutPool = false
    /// CBAM, SE or ECA; nil in a block without attention.
    let attention: BlockAttention?

    var outChannels: Int { convolutions.last!.outChannels }

    /// Runs the block on `input` (in `buffers.input`); returns the output, which is in `buffers.output`.
    /// Convolutions ping-pong between the two temporaries; the shortcut goes to whichever is free by then.
    func callAsFunction(_ input: FeatureMap, buffers: BlockBuffers, workspace: Workspace) -> FeatureMap {
        var x = input
        var temporaries = (buffers.first, buffers.second)
        for (i, conv) in convolutions.enumerated() {
            let destination = i == convolutions.count - 1 ? buffers.output : temporaries.0
            x = conv.run(x, into: destination, workspace: workspace)
            temporaries = (temporaries.1, temporaries.0)
        }
        let identity: UnsafePointer<Float>
        if let downsample, shortcutPool {
            // Both temporaries are free once the last convolution has written the output.
            let pooled = workspace.timed(.pooling) { averagePool2x2(input, into: temporaries.1) }
            identity = UnsafePointer(downsample.run(pooled, into: temporaries.0, workspace: workspace).data)
        } else if let downsample {
            identity = UnsafePointer(downsample.run(input, into: temporaries.0, workspace: workspace).data)
        } else {
            identity = UnsafePointer(input.data)
        }
        if let attention {
            workspace.timed(.cbam) {
                attention.refine(x, identity: identity, into: x.data, scratch: workspace.scratch, threads: workspace.columns.count)
            }
        } else {
            workspace.timed(.residual) { for i in 0..<x.count { x.data[i] = max(x.data[i] + identity[i], 0) } }
        }
        return x
    }
}

/// The four activation buffers a block works in; after a block, its output becomes the next block's input.
struct BlockBuffers {
    var input, first, second, output: UnsafeMutablePointer<Float>

    mutating func advance() { swap(&input, &output) }
}
