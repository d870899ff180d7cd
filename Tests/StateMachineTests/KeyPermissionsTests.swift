import EtcdAPI
import Foundation
import StateMachine
import Testing

/// etcd's permission intervals: a key alone, a range, a prefix, every key
/// from one on; a request is permitted only when they cover all its keys.
@Suite struct KeyPermissionsTests {
    static func permission(_ type: Authpb_Permission.TypeEnum, _ key: String, _ end: [UInt8] = []) -> Authpb_Permission {
        var permission = Authpb_Permission()
        permission.permType = type
        permission.key = Data(key.utf8)
        permission.rangeEnd = Data(end)
        return permission
    }

    static func role(_ permissions: [Authpb_Permission]) -> Authpb_Role {
        var role = Authpb_Role()
        role.keyPermission = permissions
        return role
    }

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func aKeyAloneCoversItselfOnly() {
        let p = KeyPermissions(roles: [Self.role([Self.permission(.readwrite, "foo")])])
        #expect(p.permits(key: Self.bytes("foo"), rangeEnd: [], writing: true))
        #expect(p.permits(key: Self.bytes("foo"), rangeEnd: [], writing: false))
        #expect(!p.permits(key: Self.bytes("foo0"), rangeEnd: [], writing: true))
        #expect(!p.permits(key: Self.bytes("fo"), rangeEnd: [], writing: false))
        // A range of exactly that key ([foo, foo\0)) is covered; a wider one is not.
        #expect(p.permits(key: Self.bytes("foo"), rangeEnd: Self.bytes("foo") + [0], writing: false))
        #expect(!p.permits(key: Self.bytes("foo"), rangeEnd: Self.bytes("fop"), writing: false))
    }

    @Test func readAndWriteAreSeparate() {
        let p = KeyPermissions(roles: [Self.role([Self.permission(.read, "r"), Self.permission(.write, "w")])])
        #expect(p.permits(key: Self.bytes("r"), rangeEnd: [], writing: false))
        #expect(!p.permits(key: Self.bytes("r"), rangeEnd: [], writing: true))
        #expect(p.permits(key: Self.bytes("w"), rangeEnd: [], writing: true))
        #expect(!p.permits(key: Self.bytes("w"), rangeEnd: [], writing: false))
    }

    @Test func aPrefixCoversItsKeysAndNotItsEnd() {
        let p = KeyPermissions(roles: [Self.role([Self.permission(.readwrite, "/prefix/", Self.bytes("/prefix0"))])])
        #expect(p.permits(key: Self.bytes("/prefix/9"), rangeEnd: [], writing: true))
        #expect(!p.permits(key: Self.bytes("/prefix0"), rangeEnd: [], writing: true))
        #expect(p.permits(key: Self.bytes("/prefix/"), rangeEnd: Self.bytes("/prefix0"), writing: false))
        #expect(!p.permits(key: Self.bytes("/prefix/"), rangeEnd: [0], writing: false), "from /prefix/ on goes past the prefix")
    }

    @Test func fromKeyCoversEverythingAfter() {
        let p = KeyPermissions(roles: [Self.role([Self.permission(.readwrite, "z", [0])])])
        #expect(p.permits(key: Self.bytes("z0"), rangeEnd: [], writing: true))
        #expect(p.permits(key: [0xFF, 0xFF], rangeEnd: [], writing: true))
        #expect(p.permits(key: Self.bytes("z"), rangeEnd: [0], writing: false))
        #expect(!p.permits(key: Self.bytes("x"), rangeEnd: [], writing: true))
        #expect(!p.permits(key: Self.bytes("y"), rangeEnd: [0], writing: false))
    }

    @Test func adjacentRangesOfTwoRolesJoinAndAGapRefuses() {
        let p = KeyPermissions(roles: [
            Self.role([Self.permission(.read, "a", Self.bytes("c"))]),
            Self.role([Self.permission(.read, "c", Self.bytes("e")), Self.permission(.read, "f", Self.bytes("g"))]),
        ])
        #expect(p.permits(key: Self.bytes("a"), rangeEnd: Self.bytes("e"), writing: false))
        #expect(p.permits(key: Self.bytes("b"), rangeEnd: Self.bytes("d"), writing: false))
        #expect(!p.permits(key: Self.bytes("a"), rangeEnd: Self.bytes("g"), writing: false), "[e, f) is a gap")
        #expect(p.permits(key: Self.bytes("f"), rangeEnd: Self.bytes("g"), writing: false))
        #expect(!p.permits(key: Self.bytes("e"), rangeEnd: [], writing: false))
    }
}
