# ferry probe: network adapters with their IPv4/IPv6 addresses, gateway and
# MTU. Prints one JSON object on stdout.
$ErrorActionPreference = 'Stop'
$nics = @()
foreach ($a in (Get-NetAdapter | Sort-Object ifIndex)) {
  $ip = Get-NetIPAddress -InterfaceIndex $a.ifIndex -ErrorAction SilentlyContinue
  $cfg = Get-NetIPConfiguration -InterfaceIndex $a.ifIndex -ErrorAction SilentlyContinue
  $mtu = (Get-NetIPInterface -InterfaceIndex $a.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue).NlMtu
  $nics += [ordered]@{
    Name           = "$($a.Name)"
    InterfaceIndex = [int]$a.ifIndex
    Description    = "$($a.InterfaceDescription)"
    MacAddress     = "$($a.MacAddress)"
    Status         = "$($a.Status)"
    Mtu            = [int]$mtu
    IPv4           = @($ip | Where-Object { $_.AddressFamily -eq 'IPv4' } | ForEach-Object { [ordered]@{ Address = "$($_.IPAddress)"; PrefixLength = [int]$_.PrefixLength } })
    IPv6           = @($ip | Where-Object { $_.AddressFamily -eq 'IPv6' } | ForEach-Object { [ordered]@{ Address = "$($_.IPAddress)"; PrefixLength = [int]$_.PrefixLength } })
    IPv4Gateway    = @($cfg.IPv4DefaultGateway | ForEach-Object { "$($_.NextHop)" })
    IPv6Gateway    = @($cfg.IPv6DefaultGateway | ForEach-Object { "$($_.NextHop)" })
  }
}
[ordered]@{ Adapters = $nics } | ConvertTo-Json -Depth 5 -Compress
