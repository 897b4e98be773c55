import Foundation
import Testing
@testable import CBAMEngine

@Suite struct AvailableCoresTests {
    @Test func cpuListsCountEveryCPUOnce() {
        #expect(AvailableCores.cpuListCount("0-1\n") == 2)
        #expect(AvailableCores.cpuListCount("0-3,8,10-11") == 7)
        #expect(AvailableCores.cpuListCount("5") == 1)
        #expect(AvailableCores.cpuListCount("") == nil)
        #expect(AvailableCores.cpuListCount("3-1") == nil)
        #expect(AvailableCores.cpuListCount("a-b") == nil)
    }

    @Test func quotasReadAsCPUs() {
        #expect(AvailableCores.quota(cpuMax: "150000 100000\n") == 1.5)
        #expect(AvailableCores.quota(cpuMax: "max 100000\n") == nil)
        #expect(AvailableCores.quota(cfsQuota: "200000\n", cfsPeriod: "100000\n") == 2)
        #expect(AvailableCores.quota(cfsQuota: "-1\n", cfsPeriod: "100000\n") == nil)
    }

    @Test func aV2QuotaCapsTheAffinityMaskRoundedUp() throws {
        let tree = try FakeProcTree(cpus: "0-7", cgroup: "0::/kubepods/pod1/box\n")
        try tree.write("cgroup/kubepods/pod1/cpu.max", "150000 100000\n")   // the pod's limit, on an ancestor
        try tree.write("cgroup/kubepods/pod1/box/cpu.max", "max 100000\n")
        #expect(tree.detect() == 2)
    }

    @Test func theAffinityMaskWinsWhenItIsSmaller() throws {
        let tree = try FakeProcTree(cpus: "2", cgroup: "0::/\n")
        try tree.write("cgroup/cpu.max", "400000 100000\n")
        #expect(tree.detect() == 1)
    }

    @Test func aV1QuotaIsReadFromTheCPUController() throws {
        let tree = try FakeProcTree(cpus: "0-15", cgroup: "3:cpu,cpuacct:/docker/abc\n1:memory:/docker/abc\n")
        try tree.write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n")
        try tree.write("cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
        #expect(tree.detect() == 3)
    }

    @Test func noQuotaMeansTheAffinityMask() throws {
        let tree = try FakeProcTree(cpus: "0-5", cgroup: "1:cpu:/\n")
        try tree.write("cgroup/cpu/cpu.cfs_quota_us", "-1\n")
        try tree.write("cgroup/cpu/cpu.cfs_period_us", "100000\n")
        #expect(tree.detect() == 6)
    }

    @Test func thisMachineHasAtLeastOneCore() {
        #expect(AvailableCores.count >= 1)
        #expect(AvailableCores.count <= max(1, ProcessInfo.processInfo.activeProcessorCount))
    }
}

/// A made-up `/proc/self` and `/sys/fs/cgroup` in a temporary directory.
private struct FakeProcTree {
    let root: URL

    init(cpus: String, cgroup: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cores-\(UUID().uuidString)")
        try write("proc/status", "Name:\tcbam-serve\nCpus_allowed:\tff\nCpus_allowed_list:\t\(cpus)\nMems_allowed:\t1\n")
        try write("proc/cgroup", cgroup)
    }

    func write(_ relative: String, _ text: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func detect() -> Int {
        defer { try? FileManager.default.removeItem(at: root) }
        return AvailableCores.detect(procSelf: root.appendingPathComponent("proc").path,
                                     cgroupRoot: root.appendingPathComponent("cgroup").path)
    }
}
