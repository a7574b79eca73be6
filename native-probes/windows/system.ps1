# ferry probe: OS, firmware type, system directory, CPU and memory, the
# machine's manufacturer strings (cloud platform), and the two migration
# checks SMS asks about: driver files present and required services sane.
# Prints one JSON object on stdout.
$ErrorActionPreference = 'Stop'
$os = Get-CimInstance Win32_OperatingSystem
$cs = Get-CimInstance Win32_ComputerSystem
$bios = Get-CimInstance Win32_BIOS
$enclosure = Get-CimInstance Win32_SystemEnclosure -ErrorAction SilentlyContinue | Select-Object -First 1
# Firmware type: $env:firmware_type exists on Windows 8 / Server 2012 and later.
$fw = "$env:firmware_type"
if (-not $fw) { $fw = if (Test-Path 'HKLM:\System\CurrentControlSet\Control\SecureBoot\State') { 'UEFI' } else { 'Legacy' } }
$drivers = @('disk.sys', 'partmgr.sys', 'volmgr.sys', 'volsnap.sys', 'ntfs.sys', 'storport.sys', 'tcpip.sys', 'mountmgr.sys')
$missing = @($drivers | Where-Object { -not (Test-Path (Join-Path $os.SystemDirectory "drivers\$_")) })
$required = @('VSS', 'swprv', 'Winmgmt', 'RpcSs', 'EventLog')
$abnormal = @()
foreach ($name in $required) {
  $s = Get-CimInstance Win32_Service -Filter "Name='$name'" -ErrorAction SilentlyContinue
  if (-not $s) { $abnormal += [ordered]@{ Name = $name; Problem = 'missing' } }
  elseif ($s.StartMode -eq 'Disabled') { $abnormal += [ordered]@{ Name = $name; Problem = 'disabled' } }
}
[ordered]@{
  Hostname          = "$env:COMPUTERNAME"
  Caption           = "$($os.Caption)"
  Version           = "$($os.Version)"
  BuildNumber       = "$($os.BuildNumber)"
  OSArchitecture    = "$($os.OSArchitecture)"
  ProductType       = [int]$os.ProductType
  SystemDirectory   = "$($os.SystemDirectory)"
  WindowsDirectory  = "$($os.WindowsDirectory)"
  SystemDrive       = "$($os.SystemDrive)"
  FirmwareType      = $fw
  CpuCount          = [int]$cs.NumberOfLogicalProcessors
  MemoryBytes       = [int64]$cs.TotalPhysicalMemory
  Manufacturer      = "$($cs.Manufacturer)"
  Model             = "$($cs.Model)"
  HypervisorPresent = [bool]$cs.HypervisorPresent
  BiosVendor        = "$($bios.Manufacturer)"
  BiosVersion       = "$($bios.SMBIOSBIOSVersion)"
  ChassisAssetTag   = "$($enclosure.SMBIOSAssetTag)"
  MissingDriverFiles = $missing
  AbnormalServices  = $abnormal
} | ConvertTo-Json -Depth 4 -Compress
