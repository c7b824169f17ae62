#!/usr/bin/perl
# Writes geo_test.mmdb: a tiny database shaped like GeoLite2-City (continent/code,
# country/iso_code, subdivisions/0/iso_code) for tests/unit/test_geo.c and test_policy.c.
# Regenerate with (Debian: libmaxmind-db-writer-perl):
#   perl tests/unit/data/make_geo_mmdb.pl tests/unit/data/geo_test.mmdb        IPv6 tree
#   perl tests/unit/data/make_geo_mmdb.pl tests/unit/data/geo_test4.mmdb 4     IPv4-only tree
#   perl tests/unit/data/make_geo_mmdb.pl /tmp/geo_big.mmdb big 100000         N random networks
# (the last one is for measuring load time and memory; it is not committed). The networks are documentation and private ranges, kept
# (remove_reserved_networks => 0), in several continents, countries and subdivisions, with one
# prefix nested inside another and IPv4 aliased into IPv6 as MaxMind's files are.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out  = shift @ARGV or die "usage: $0 OUT.mmdb [4 | big N]\n";
my $mode = shift @ARGV // '6';
my $ipv  = $mode eq '4' ? 4 : 6;

my %types = (
    continent    => 'map',
    country      => 'map',
    subdivisions => [ 'array', 'map' ],
    code         => 'utf8_string',
    iso_code     => 'utf8_string',
    names        => 'map',
    postal       => 'map',
    en           => 'utf8_string',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => $ipv,
    record_size              => 24,
    database_type            => 'GeoLite2-City',
    languages                => ['en'],
    description              => { en => 'zonejet unit test geolocation data' },
    map_key_type_callback    => sub { $types{ $_[0] } // 'utf8_string' },
    alias_ipv6_to_ipv4       => $ipv == 6 ? 1 : 0,
    remove_reserved_networks => 0,
);

sub loc {
    my ( $continent, $country, $sub ) = @_;
    my %d = ( continent => { code => $continent, names => { en => $continent } } );
    $d{country} = { iso_code => $country, names => { en => $country } } if defined $country;
    $d{subdivisions} = [ { iso_code => $sub, names => { en => $sub } } ] if defined $sub;
    return \%d;
}

# network                       continent country subdivision
my @nets = (
    [ '192.0.2.0/24',        loc( 'NA', 'US', 'CA' ) ],
    [ '198.51.100.0/24',     loc( 'EU', 'DE', 'BY' ) ],
    [ '203.0.113.0/25',      loc( 'AS', 'JP' ) ],
    [ '203.0.113.128/25',    loc( 'OC', 'AU', 'NSW' ) ],
    [ '10.0.0.0/8',          loc( 'EU', 'FR' ) ],
    [ '10.1.0.0/16',         loc( 'NA', 'CA', 'QC' ) ],    # inside 10.0.0.0/8
    [ '100.64.0.0/10',       loc('AF') ],                  # a continent without a country
    [ '100.128.0.0/16',      { postal => { code => '00000' } } ],    # data, but no location
    [ '2001:db8::/32',       loc( 'EU', 'GB', 'ENG' ) ],
    [ '2001:db8:1::/48',     loc( 'NA', 'US', 'TX' ) ],    # inside 2001:db8::/32
    [ '2400:cb00::/32',      loc( 'AS', 'SG' ) ],
);
if ( $mode eq 'big' ) {
    # N networks: /24s of IPv4 and /48s of IPv6 spread over the space, 250 countries with 4
    # subdivisions each (about the number of distinct records GeoLite2-City has per country)
    my $n = shift @ARGV // 100000;
    my @continents = qw(AF AN AS EU NA OC SA);
    srand(7);
    my %seen;
    for ( my $i = 0 ; $i < $n ; ) {
        my $c  = int( rand(250) );
        my $cc = chr( 65 + $c % 26 ) . chr( 65 + int( $c / 26 ) );
        my $d  = loc( $continents[ $c % 7 ], $cc, 'S' . int( rand(4) ) );
        my $net;
        if ( $i % 4 == 3 ) {
            # 2400::-2fff:: keeps clear of the 2001::/32 and 2002::/16 aliases
            $net = sprintf( '2%03x:%x:%x::/48', 0x400 + int( rand(0xc00) ), int( rand(65536) ),
                int( rand(65536) ) );
        }
        else {
            $net = sprintf( '::%d.%d.%d.0/120', 1 + int( rand(223) ), int( rand(256) ),
                int( rand(256) ) );
        }
        next if $seen{$net}++;
        $tree->insert_network( $net, $d );
        $i++;
    }
}
else {
    for my $n (@nets) {
        my ( $net, $data ) = @$n;
        next if $ipv == 4 && $net =~ /:/;
        if ( $ipv == 6 && $net !~ /:/ ) {
            # IPv4 lives under ::/96 in an IPv6 tree
            $net =~ s{/(\d+)$}{'/' . ( $1 + 96 )}e;
            $net = "::$net";
        }
        $tree->insert_network( $net, $data );
    }
}

open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
