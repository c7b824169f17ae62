#!/usr/bin/perl
# Write a small MaxMind-format (.mmdb) database shaped like GeoLite2-City for the policy tests.
#
#   make_geoip.pl OUT.mmdb NETWORK=CONTINENT[/COUNTRY[/SUBDIVISION]] ...
#
# NETWORK is an IPv4 or IPv6 prefix ("10.2.0.0/16", "2001:db8:1::/48"). Each record holds
# continent.code, and when given country.iso_code and subdivisions[0].iso_code (the ISO 3166-2
# part after the hyphen, as GeoLite2 stores it: "CA" for US-CA). A "-" as CONTINENT writes a
# record without any location (a network the database knows but cannot place).
# The tree is IPv6 (IPv4 networks live under ::/96, as in GeoLite2 files) and keeps reserved
# networks (10/8, 127/8, 2001:db8::/32), which the tests use.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

die "usage: $0 OUT.mmdb NETWORK=CONTINENT[/COUNTRY[/SUBDIVISION]] ...\n" if @ARGV < 2;
my ( $out, @specs ) = @ARGV;

my %types = (
    continent    => 'map',
    country      => 'map',
    subdivisions => [ 'array', 'map' ],
    code         => 'utf8_string',
    iso_code     => 'utf8_string',
    names        => 'map',
    en           => 'utf8_string',
    note         => 'utf8_string',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 28,
    database_type            => 'GeoLite2-City',
    languages                => ['en'],
    description              => { en => 'zonejet policy test data' },
    remove_reserved_networks => 0,
    map_key_type_callback    => sub { $types{ $_[0] } },
);

for my $spec (@specs) {
    my ( $net, $loc ) = split /=/, $spec, 2;
    die "bad spec '$spec'\n" unless defined $loc && $net =~ m{/};
    my ( $continent, $country, $sub ) = split m{/}, $loc;
    my %rec;
    if ( $continent eq '-' ) {
        $rec{note} = 'no location';
    }
    else {
        $rec{continent} = { code => $continent, names => { en => $continent } };
        $rec{country} = { iso_code => $country, names => { en => $country } }
            if defined $country && length $country;
        $rec{subdivisions} = [ { iso_code => $sub, names => { en => $sub } } ]
            if defined $sub && length $sub;
    }
    $tree->insert_network( $net, \%rec );
}

open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
