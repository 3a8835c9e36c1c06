#!/usr/bin/perl
# dh-hwcaps: the "hwcaps" sequence addon (Build-Depends: dh-sequence-hwcaps).
#
# In the package's own build it adds four commands to dh's sequences (see
# dh_hwcaps(7) and each command's manual page):
#   dh_hwcaps_snapshot  before dh_update_autotools_config (the build
#                       sequence's first step that may write): the pristine
#                       tree the variants start from
#   dh_hwcaps_build     after dh_auto_test: the variant builds
#   dh_hwcaps_install   before dh_dwz (dh_strip below compat 12): the variants
#                       go into glibc-hwcaps/<level>/, so their debug symbols
#                       go into -dbgsym and dh_strip strips them
#   dh_hwcaps_clean     before dh_clean
# and gives dh_makeshlibs -X/glibc-hwcaps/: variants never change the
# shlibs or symbols files (dh_hwcaps_stash and dh_hwcaps_unstash around it
# move them aside, for a maintainer's override_dh_makeshlibs).
#
# In a variant's build (HWCAPDEB_STAGE=variant, run by dh_hwcaps_build in a
# copy of the tree) none of that: its install sequence stops after
# dh_auto_install (a variant needs the libraries, not packages; the
# maintainer's override_/execute_*_ targets for the removed commands do not
# run).  In the "prepare" stage only the build steps before
# dh_auto_configure run, once for all variants; a variant started from that
# tree (HWCAPDEB_PREPARED) skips them.  While several builds run at once
# (HWCAPDEB_TEST_LOCK set) each dh_auto_test runs between
# hwcapdeb-tests-begin and hwcapdeb-tests-end, which take and release one
# lock: two test suites of the package never run at once.
#
# Packages converted with "hwcapdeb convert --mode embed" carry a copy of this
# file, loaded only in those stages (HWCAPS_MODE=embed).
use strict;
use warnings;
use Debian::Debhelper::Dh_Lib qw(compat);
no warnings qw(once);  # dh's own state, read once here

my %sequences = %Debian::Debhelper::DH::SequenceState::sequences;
my $stage = $ENV{'HWCAPDEB_STAGE'} // '';
my $mode = $ENV{'HWCAPS_MODE'} // 'addon';

sub commands_of {
	my ($name) = @_;
	my $seq = $sequences{$name};
	return () unless $seq and ref($seq->{'_cmds'}) eq 'ARRAY';
	return map { $_->{'command'} } @{$seq->{'_cmds'}};
}

if ($stage eq '' and $mode ne 'embed') {
	insert_before('dh_update_autotools_config', 'dh_hwcaps_snapshot');
	insert_after('dh_auto_test', 'dh_hwcaps_build');
	insert_before(compat(11) ? 'dh_strip' : 'dh_dwz', 'dh_hwcaps_install');
	insert_before('dh_clean', 'dh_hwcaps_clean');
	add_command_options('dh_makeshlibs', '-X/glibc-hwcaps/');
	# and for an override_dh_makeshlibs, which gets no command options
	insert_before('dh_makeshlibs', 'dh_hwcaps_stash');
	insert_after('dh_makeshlibs', 'dh_hwcaps_unstash');
}

# The build sequence's steps before dh_auto_configure (dh_update_autotools_config,
# dh_autoreconf, whatever addons put there) do not depend on the compiler
# flags: the "prepare" stage runs only them, once, and the variants, copies
# of its tree (HWCAPDEB_PREPARED), skip them.
my @build = grep { !/^create-stamp/ } commands_of('build');
my ($configure) = grep { $build[$_] eq 'dh_auto_configure' } 0 .. $#build;
if ($stage eq 'prepare') {
	remove_command($_) for @build[($configure // 0) .. $#build];
}
if ($stage eq 'variant' and $ENV{'HWCAPDEB_PREPARED'} and defined($configure)) {
	remove_command($_) for @build[0 .. $configure - 1];
}

if ($stage eq 'variant') {
	my $after_install = 0;
	for my $cmd (commands_of('install')) {
		remove_command($cmd) if $after_install;
		$after_install = 1 if $cmd eq 'dh_auto_install';
	}
}

if ($ENV{'HWCAPDEB_TEST_LOCK'}) {
	insert_before('dh_auto_test', 'hwcapdeb-tests-begin');
	insert_after('dh_auto_test', 'hwcapdeb-tests-end');
}

1;
