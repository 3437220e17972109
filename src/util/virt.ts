/** systemd-detect-virt's names for containers (nspawn, lxc, docker, podman, ...), apart from VMs (kvm, xen, ...). */
const CONTAINERS = new Set(['systemd-nspawn', 'lxc', 'lxc-libvirt', 'docker', 'podman', 'rkt', 'wsl', 'proot', 'pouch', 'openvz'])

/** Whether a host whose `systemd-detect-virt` printed `virt` is a container (shares the kernel and hardware of its machine). */
export const isContainer = (virt: string): boolean => CONTAINERS.has(virt)
