// s[] = sum(x): a reduction whose result lands in a rank-0 buffer.
builtin.module {
  func.func @total(%x: memref<${N}x${T}>, %s: memref<${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : ${T}
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (${T}) {
      %v = memref.load %x[%i] : memref<${N}x${T}>
      %a = arith.addf %acc, %v : ${T}
      scf.yield %a : ${T}
    }
    memref.store %r, %s[] : memref<${T}>
    func.return
  }
}
