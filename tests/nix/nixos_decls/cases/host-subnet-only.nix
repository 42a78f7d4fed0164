# Only the subnet is set: the DHCP range must follow it (pr-test-vm derives it).
{
  services.staging-vm.enable = true;
  services.staging-vm.network.subnet = "10.77.0.0/24";
}
