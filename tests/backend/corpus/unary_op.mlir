// y[i] = OP(x[i]) for one unary float op given as ${OP}.
builtin.module {
  func.func @unary(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    scf.for %i = %c0 to %n step %c1 {
      %v = memref.load %x[%i] : memref<${N}x${T}>
      %r = ${OP} %v : ${T}
      memref.store %r, %y[%i] : memref<${N}x${T}>
    }
    func.return
  }
}
