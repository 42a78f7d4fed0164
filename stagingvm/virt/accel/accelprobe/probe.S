/*
 * stagingvm's accelerator probe: a 300-byte multiboot payload (QEMU -kernel, "a.out kludge").
 *
 * Why not just wait for SeaBIOS? On nested hosts (a KVM guest inside a microVM, say) KVM can
 * start a guest, SeaBIOS prints its banner, and yet CPU-bound guest code runs a thousand times
 * too slowly: a Linux kernel never gets past decompression. So the probe does what a kernel
 * does first: enter long mode with paging, touch memory, and run a CPU-bound loop of 200 million
 * iterations (about 0.1 s on working KVM). Only then does it print MARKER on COM1.
 *
 * Build (checked by tests/unit/virt/accel/test_accel.py when binutils is installed):
 *   as --32 -o probe.o probe.S
 *   ld -m elf_i386 -Ttext=0x100000 --oformat=binary -o probe.bin probe.o
 */
        .set BASE, 0x100000
        .set PML4, 0x101000
        .set PDPT, 0x102000
        .set PD,   0x103000
        .code32
        .globl _start
_start:                                 /* multiboot header, flags bit 16: load addresses */
        .long 0x1BADB002
        .long 0x00010000
        .long -(0x1BADB002 + 0x00010000)
        .long BASE                      /* header_addr */
        .long BASE                      /* load_addr */
        .long 0                         /* load_end_addr: whole file */
        .long 0                         /* bss_end_addr: none */
        .long BASE + (entry - _start)   /* entry_addr */
entry:
        cli
        mov $0x3f8, %dx
        mov $'P', %al                   /* "P": protected mode reached */
        out %al, %dx
        mov $PML4, %edi                 /* zero the three page-table pages */
        xor %eax, %eax
        mov $(3 * 1024), %ecx
        rep stosl
        movl $(PDPT + 3), PML4
        movl $(PD + 3), PDPT
        mov $PD, %edi                   /* identity-map 64 MiB with 2 MiB pages */
        mov $0x83, %eax
        mov $32, %ecx
1:      mov %eax, (%edi)
        add $0x200000, %eax
        add $8, %edi
        loop 1b
        mov %cr4, %eax                  /* PAE */
        or $0x20, %eax
        mov %eax, %cr4
        mov $PML4, %eax
        mov %eax, %cr3
        mov $0xC0000080, %ecx           /* EFER.LME */
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax                  /* paging on: long mode */
        or $0x80000001, %eax
        mov %eax, %cr0
        lgdt BASE + (gdtr - _start)
        ljmp $0x08, $(BASE + (long64 - _start))
        .code64
long64:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %ss
        mov $0x3f8, %dx
        mov $'L', %al                   /* "L": long mode reached */
        out %al, %dx
        mov $0x200000, %rdi             /* touch every 4 KiB page from 2 MiB to 62 MiB */
2:      movb $1, (%rdi)
        add $0x1000, %rdi
        cmp $0x3E00000, %rdi
        jb 2b
        mov $0x3f8, %dx
        mov $'M', %al                   /* "M": memory touched */
        out %al, %dx
        mov $200000000, %rcx            /* CPU-bound work */
        xor %rax, %rax
3:      add %rcx, %rax
        rol $7, %rax
        dec %rcx
        jnz 3b
        lea msg(%rip), %rsi
        mov $0x3f8, %dx
4:      lodsb
        test %al, %al
        jz 5f
        out %al, %dx
        jmp 4b
5:      cli
        hlt
        jmp 5b
        .align 8
gdt:
        .quad 0
        .quad 0x00209A0000000000        /* 64-bit code */
        .quad 0x0000920000000000        /* data */
gdtr:
        .word gdtr - gdt - 1
        .long BASE + (gdt - _start)
msg:
        .asciz "\nSTAGINGVM-ACCEL-PROBE-OK\n"
