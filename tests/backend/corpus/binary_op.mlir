// z[i] = OP(x[i], y[i]) for one binary float op given as ${OP}.
builtin.module {
  func.func @binary(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>, %z: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    scf.for %i = %c0 to %n step %c1 {
      %a = memref.load %x[%i] : memref<${N}x${T}>
      %b = memref.load %y[%i] : memref<${N}x${T}>
      %r = ${OP} %a, %b : ${T}
      memref.store %r, %z[%i] : memref<${N}x${T}>
    }
    func.return
  }
}
