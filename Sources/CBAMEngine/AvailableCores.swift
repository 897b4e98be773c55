import Foundation

/// The number of cores this process may keep busy, found as the JVM and Go's runtime find it: the CPUs in its
/// affinity mask (`taskset`, a cpuset), capped by its cgroup CPU quota (a Kubernetes `limits.cpu`), rounded up.
/// A container limited to 1.5 CPUs on a 64-core node gets 2, not 64.
public enum AvailableCores {
    /// Read once, at first use.
    public static let count: Int = detect()

    /// `procSelf` and `cgroupRoot` are parameters so that tests can point them at a made-up tree.
    static func detect(procSelf: String = "/proc/self", cgroupRoot: String = "/sys/fs/cgroup") -> Int {
        let online = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let allowed = read("\(procSelf)/status")
            .flatMap { status in status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") } }
            .flatMap { line in cpuListCount(String(line.dropFirst("Cpus_allowed_list:".count))) } ?? online
        guard let quota = cgroupQuota(procSelf: procSelf, cgroupRoot: cgroupRoot) else { return max(1, allowed) }
        return max(1, min(allowed, Int(quota.rounded(.up))))
    }

    /// CPUs in a kernel CPU list such as "0-3,8,10-11"; nil if it does not parse.
    static func cpuListCount(_ list: String) -> Int? {
        var total = 0
        for part in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            switch bounds.count {
            case 1:
                guard bounds[0] != nil else { return nil }
                total += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], low <= high else { return nil }
                total += high - low + 1
            default:
                return nil
            }
        }
        return total > 0 ? total : nil
    }

    /// CPUs granted by a cgroup v2 `cpu.max` ("150000 100000" is 1.5); nil when unlimited ("max ...").
    static func quota(cpuMax: String) -> Double? {
        let fields = cpuMax.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 1, let quota = Double(fields[0]) else { return nil }
        let period = fields.count >= 2 ? Double(fields[1]) ?? 100_000 : 100_000
        return quota > 0 && period > 0 ? quota / period : nil
    }

    /// CPUs granted by cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us`; nil when unlimited (-1).
    static func quota(cfsQuota: String, cfsPeriod: String) -> Double? {
        guard let quota = Double(cfsQuota.trimmingCharacters(in: .whitespacesAndNewlines)),
              let period = Double(cfsPeriod.trimmingCharacters(in: .whitespacesAndNewlines)),
              quota > 0, period > 0 else { return nil }
        return quota / period
    }

    /// The tightest CPU quota on this process's cgroup and its ancestors (v2), or on its v1 `cpu` cgroup.
    private static func cgroupQuota(procSelf: String, cgroupRoot: String) -> Double? {
        guard let membership = read("\(procSelf)/cgroup") else { return nil }
        var quotas: [Double] = []
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ","), path = String(fields[2])
            if fields[0] == "0" && controllers.isEmpty {
                // cgroup v2: the unified tree, at the root or (hybrid hierarchies) under unified/.
                for base in [cgroupRoot, "\(cgroupRoot)/unified"] {
                    for directory in selfAndAncestors(path) {
                        if let text = read("\(base)\(directory)/cpu.max"), let quota = quota(cpuMax: text) {
                            quotas.append(quota)
                        }
                    }
                }
            } else if controllers.contains("cpu") {
                // cgroup v1: the cpu controller's mount; inside a container the path may not exist there, so the
                // mount's root is read too.
                for mount in ["cpu", "cpu,cpuacct", "cpuacct,cpu"] {
                    for directory in Set([path, "/"]) {
                        let base = "\(cgroupRoot)/\(mount)\(directory == "/" ? "" : directory)"
                        if let quotaText = read("\(base)/cpu.cfs_quota_us"),
                           let periodText = read("\(base)/cpu.cfs_period_us"),
                           let quota = quota(cfsQuota: quotaText, cfsPeriod: periodText) {
                            quotas.append(quota)
                        }
                    }
                }
            }
        }
        return quotas.min()
    }

    /// "/a/b" → ["/a/b", "/a", ""]: each directory from the cgroup itself up to the root ("" is the root).
    private static func selfAndAncestors(_ path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var result: [String] = []
        while true {
            result.append(parts.isEmpty ? "" : "/" + parts.joined(separator: "/"))
            if parts.isEmpty { return result }
            parts.removeLast()
        }
    }

    private static func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }
}
