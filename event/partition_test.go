package event

import "testing"

// Vectors computed with an independent FNV-1a implementation (Python); they
// are also listed in docs/CONTRACT.md for producers in other languages.
func TestPartitionVectors(t *testing.T) {
	tests := []struct {
		app, from      string
		hash           uint32
		p32, p7, p1024 int
	}{
		{"demo", "alice", 0x842714d2, 18, 3, 210},
		{"demo", "bob", 0xe95af22d, 13, 5, 557},
		{"tencent-prod", "user_0001", 0x726108d3, 19, 5, 211},
		{"z", "10001", 0xef73bb85, 5, 6, 901},
	}
	for _, tc := range tests {
		if got := Partition(tc.app, tc.from, 1<<32-1); uint32(got) != tc.hash%(1<<32-1) {
			t.Errorf("hash(%q,%q) mod 2^32-1 = %d, want %d", tc.app, tc.from, got, tc.hash%(1<<32-1))
		}
		for _, c := range []struct{ n, want int }{{32, tc.p32}, {7, tc.p7}, {1024, tc.p1024}} {
			if got := Partition(tc.app, tc.from, c.n); got != c.want {
				t.Errorf("Partition(%q, %q, %d) = %d, want %d", tc.app, tc.from, c.n, got, c.want)
			}
		}
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	for _, lane := range []Lane{LaneLive, LaneBulk} {
		for _, p := range []int{0, 7, 31, 4095} {
			s := Subject(lane, p)
			l, q, ok := ParseSubject(s)
			if !ok || l != lane || q != p {
				t.Errorf("ParseSubject(%q) = %q, %d, %v", s, l, q, ok)
			}
		}
	}
	for _, bad := range []string{"", "friendsync.ev", "friendsync.ev.live", "friendsync.ev.other.1", "friendsync.ev.live.x", "friendsync.ev.live.-1", "friendsync.dlq.x"} {
		if _, _, ok := ParseSubject(bad); ok {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
	if got := Subject(LaneLive, 18); got != "friendsync.ev.live.18" {
		t.Errorf("Subject = %q", got)
	}
}

func TestLayoutNames(t *testing.T) {
	l := Layout{Base: "fs_t-1"}
	if l.StreamBase() != "FS_T_1" || l.Subject(LaneBulk, 3) != "fs_t-1.ev.bulk.3" || l.MetaBucket() != "fs_t-1-meta" || l.Subjects() != "fs_t-1.ev.>" {
		t.Errorf("layout names: %s %s %s %s", l.StreamBase(), l.Subject(LaneBulk, 3), l.MetaBucket(), l.Subjects())
	}
	if l.PartitionStream(3) != "FS_T_1_P3" || l.PartitionSubjects(3) != "fs_t-1.ev.*.3" {
		t.Errorf("partition names: %s %s", l.PartitionStream(3), l.PartitionSubjects(3))
	}
	var zero Layout
	if zero.StreamBase() != "FRIENDSYNC" || zero.SubjectPrefix() != "friendsync.ev" || zero.PartitionStream(0) != "FRIENDSYNC_P0" {
		t.Errorf("zero layout: %s %s %s", zero.StreamBase(), zero.SubjectPrefix(), zero.PartitionStream(0))
	}
	if _, _, ok := l.ParseSubject("friendsync.ev.live.1"); ok {
		t.Error("parsed a subject of another layout")
	}
}

func TestParsePartitionStream(t *testing.T) {
	l := Layout{Base: "fs"}
	for _, p := range []int{0, 1, 31, MaxPartitions - 1} {
		if got, ok := l.ParsePartitionStream(l.PartitionStream(p)); !ok || got != p {
			t.Errorf("ParsePartitionStream(%q) = %d, %v", l.PartitionStream(p), got, ok)
		}
	}
	for _, bad := range []string{"", "FS", "FS_P", "FS_DLQ", "FS_P-1", "FS_P01", "FS_Px", "FS_P4096", "FRIENDSYNC_P1", "FS_P1_P2"} {
		if p, ok := l.ParsePartitionStream(bad); ok {
			t.Errorf("ParsePartitionStream(%q) accepted: %d", bad, p)
		}
	}
}
